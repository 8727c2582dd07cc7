% Read an infoutil HDF5 file in MATLAB with the built-in h5read / h5readatt.
%
% MATLAB is column-major, so it shows HDF5 dimensions in REVERSE order: a dataset that infoutil
% writes as [N, K] (layout attribute "N,K") arrives as a K-by-N matrix, and [N, C, H, W] images
% arrive as W-by-H-by-C-by-N. permute(x, ndims(x):-1:1) restores the documented order.
%
%   read_h5('out/teacher-eval.h5')

function read_h5(path)
    info = h5info(path);
    fprintf('%s\n', path);
    for a = info.Attributes'
        fprintf('  @%s: %s\n', a.Name, string(a.Value));
    end
    config = jsondecode(h5readatt(path, '/', 'config'));
    disp(config);

    logits = h5read(path, '/logits');            % K x N in MATLAB
    logits = permute(logits, [2 1]);              % N x K, as documented
    labels = h5read(path, '/labels');             % N x 1, 0-based class indices
    [~, pred] = max(logits, [], 2);               % 1-based
    top1 = mean(pred - 1 == labels);
    fprintf('top-1 recomputed: %.2f%% (stored: %s)\n', 100 * top1, h5readatt(path, '/', 'top1'));
    fprintf('layout of /logits: %s\n', h5readatt(path, '/logits', 'layout'));
end
