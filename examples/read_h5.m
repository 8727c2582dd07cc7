% Read an infoutil HDF5 file in MATLAB with the built-in h5info / h5read / h5readatt.
%
% MATLAB is column-major, so it shows HDF5 dimensions in REVERSE order: a dataset that infoutil
% writes as [N, K] (its "layout" attribute says "N,K") arrives as a K-by-N matrix, and
% [N, C, H, W] images arrive as W-by-H-by-C-by-N. permute(x, ndims(x):-1:1) restores the
% documented order. Class indices are 0-based, as written.
%
%   read_h5('out/teacher-eval.h5')
%   read_h5('out/distilled.h5')

function read_h5(path)
    info = h5info(path);
    fprintf('%s\n', path);
    for a = info.Attributes'
        fprintf('  @%s: %s\n', a.Name, string(a.Value));
    end
    config = jsondecode(h5readatt(path, '/', 'config'));
    disp(config);
    kind = h5readatt(path, '/', 'kind');

    if strcmp(kind, 'teacher_eval')
        logits = permute(h5read(path, '/logits'), [2 1]);   % N x K, as documented
        labels = h5read(path, '/labels');                    % N x 1
        [~, pred] = max(logits, [], 2);                      % 1-based
        fprintf('top-1 recomputed: %.2f%% (stored: %s)\n', ...
                100 * mean(pred - 1 == labels), h5readatt(path, '/', 'top1'));

    elseif strcmp(kind, 'distilled')
        x = h5read(path, '/images');          % W x H x C x N, teacher input space
        x = permute(x, [4 3 2 1]);            % N x C x H x W, as documented
        u8 = permute(h5read(path, '/images_uint8'), [4 3 2 1]);
        labels = h5read(path, '/labels');     % N x 1
        soft = permute(h5read(path, '/soft_labels'), [3 2 1]);   % N x T x K
        fprintf('%d images of %d x %d x %d, %d tile(s) each, %d classes\n', ...
                size(x, 1), size(x, 2), size(x, 3), size(x, 4), size(soft, 2), size(soft, 3));
        fprintf('soft labels sum to 1: max deviation %.2g\n', max(abs(sum(soft, 3) - 1), [], 'all'));
        % First distilled image as a picture (H x W for grey, H x W x 3 for colour):
        img = permute(u8(1, :, :, :), [3 4 2 1]);
        imshow(img); title(sprintf('class %d', labels(1)));
    end
end
