infoutil distill --data /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz --backend ort --budget 128 --out out/results/infoutil-gradcam-ipc50-s2.h5 --ipc 50 --seed 2 --attribution gradcam
