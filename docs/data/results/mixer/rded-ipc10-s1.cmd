infoutil distill --data /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz --backend ort --budget 128 --out out/results/rded-ipc10-s1.h5 --ipc 10 --seed 1 --method rded
