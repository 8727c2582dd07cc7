infoutil distill --data out/tune/split/train-images-idx3-ubyte.gz --backend ort --ipc 1 --out out/sweep/ipc1/alpha2-ipc1-s2.h5 --seed 2
