% Read an infoutil HDF5 file in MATLAB (h5read / h5readatt) or GNU Octave (load -hdf5).
%
% Both are column-major, so they show HDF5 dimensions in REVERSE order: a dataset that infoutil
% writes as [N, K] (its "layout" attribute says "N,K") arrives as a K-by-N matrix, and
% [N, C, H, W] images arrive as W-by-H-by-C-by-N. permute(x, ndims(x):-1:1) restores the
% documented order, which is what this reader returns. Class indices are 0-based, as written.
%
%   d = read_h5('out/distilled.h5');   % d.images is N x C x H x W, d.soft_labels N x T x K
%   read_h5('out/teacher-eval.h5')     % prints a summary (and, in MATLAB, shows an image)
%
% Octave's load reads datasets and groups but not HDF5 attributes, so there the run's
% configuration (the root attribute "config") is not read: `infoutil inspect FILE` prints it.

function d = read_h5(path)
    fprintf('%s\n', path);
    raw = read_datasets(path);
    d = struct();
    if isfield(raw, 'logits')                  % kind = teacher_eval
        d.kind = 'teacher_eval';
        d.logits = documented(raw.logits, 2);     % N x K
        d.labels = raw.labels(:);              % N x 1
        [~, pred] = max(d.logits, [], 2);      % 1-based
        fprintf('top-1 recomputed: %.2f%%\n', 100 * mean(double(pred - 1) == double(d.labels)));
    elseif isfield(raw, 'images')              % kind = distilled
        d.kind = 'distilled';
        d.images = documented(raw.images, 4);             % N x C x H x W, teacher input space
        d.images_uint8 = documented(raw.images_uint8, 4); % the same as 0..255 pixels
        d.labels = raw.labels(:);                      % N x 1
        d.soft_labels = documented(raw.soft_labels, 3);   % N x T x K
        d.source_index = documented(raw.provenance.source_index, 2);  % N x T
        d.crop_box = documented(raw.provenance.crop_box, 3);          % N x T x 4
        fprintf('%d images of %d x %d x %d, %d tile(s) each, %d classes\n', size(d.images, 1), ...
                size(d.images, 2), size(d.images, 3), size(d.images, 4), size(d.soft_labels, 2), ...
                size(d.soft_labels, 3));
        dev = abs(sum(d.soft_labels, 3) - 1);
        fprintf('soft labels sum to 1: max deviation %.2g\n', max(dev(:)));
        if nargout == 0 && ~is_octave()        % first distilled image as a picture
            img = permute(d.images_uint8(1, :, :, :), [3 4 2 1]);   % H x W (x 3)
            imshow(img); title(sprintf('class %d', d.labels(1)));
        end
    else
        error('read_h5:kind', '%s: neither /logits (teacher_eval) nor /images (distilled)', path);
    end
    if ~is_octave()
        d.config = jsondecode(h5readatt(path, '/', 'config'));
    end
end

function x = documented(x, rank)
    % Column-major (reversed) axes -> the documented order of a dataset with `rank` axes (given,
    % because trailing axes of length 1 are dropped on reading: [N, 1] arrives as 1 x N).
    x = permute(x, rank:-1:1);
end

function raw = read_datasets(path)
    if is_octave()
        raw = load('-hdf5', path);             % datasets as fields, groups as nested structs
    else
        info = h5info(path);
        raw = struct();
        for ds = info.Datasets'
            raw.(ds.Name) = h5read(path, ['/' ds.Name]);
        end
        for g = info.Groups'
            name = g.Name(2:end);
            for ds = g.Datasets'
                raw.(name).(ds.Name) = h5read(path, [g.Name '/' ds.Name]);
            end
        end
    end
end

function yes = is_octave()
    yes = exist('OCTAVE_VERSION', 'builtin') ~= 0;
end
