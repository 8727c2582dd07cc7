infoutil distill --data out/tune/split/train-images-idx3-ubyte.gz --backend ort --ipc 10 --out out/sweep/ipc10/alpha0.5-ipc10-s2.h5 --seed 2 --alpha 0.5 --maps-from out/sweep/ipc1/alpha2-ipc1-s2.h5
