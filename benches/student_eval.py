"""CPU time of one student evaluation pass, PyTorch against ONNX Runtime (docs/results.md).

    python benches/student_eval.py [N] [STUDENT...]     # defaults: 2000 convnet3 resnet18 vit mixer

For each student (random weights; the arithmetic does not depend on them) the logits of N random
28-px images are computed on one thread by scripts/train_student.py's `logits_of`, alternating
the backends twice (torch, ort, torch, ort) in one process; prints the CPU time of each run
(`time.process_time`, which a loaded machine disturbs far less than wall time) and the ratio of
the faster runs. Needs examples/requirements-student.txt.
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import train_student as ts  # noqa: E402


def main(argv):
    n = int(argv[0]) if argv else 2000
    students = argv[1:] or ["convnet3", "resnet18", "vit", "mixer"]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for name in students:
        model = ts.make_student(name, 1, 28, 10)
        x = torch.randn(n, 1, 28, 28)
        cpu = {"torch": [], "ort": []}
        for backend in ("torch", "ort", "torch", "ort"):
            start = time.process_time()
            ts.logits_of(model, x, backend, 1)
            cpu[backend].append(time.process_time() - start)
        runs = {k: [round(v, 2) for v in vs] for k, vs in cpu.items()}
        print(f"{name} {n} images, CPU s {runs}, torch/ort {min(cpu['torch']) / min(cpu['ort']):.2f}",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
