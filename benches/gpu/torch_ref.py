"""PyTorch's own rates for the same network on the same device, as a yardstick for
benches/gpu/run.sh's throughput table: torchvision ResNet-18 (1 000 classes, its constructor's
weights), 224 px, float32 with TensorFloat-32 off (as the tract and ONNX Runtime runs compute).
Raw inference in images/s, and per-sample gradient norms in norms/s with torch.func's
`vmap(grad)`, each timed over about --seconds of work after a warm-up. Prints two markdown rows.

    python3 benches/gpu/torch_ref.py --device cuda --batch 256 --grad-batch 32 --seconds 3
"""
import argparse
import time

import torch
import torchvision
from torch.func import functional_call, grad, vmap


def timed(fn, device, seconds):
    """Calls of fn until `seconds` have passed (at least 2), after one warm-up call: (calls, s)."""
    def sync():
        if device == "cuda":
            torch.cuda.synchronize()
    fn()
    sync()
    calls, t0 = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - t0 < seconds:
        fn()
        calls += 1
    sync()
    return calls, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--grad-batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=1000).to(args.device).eval()
    x = torch.randn(args.batch, 3, 224, 224, device=args.device)
    with torch.no_grad():
        calls, s = timed(lambda: model(x), args.device, args.seconds)
    print(f"| PyTorch {torch.__version__}, raw inference | {args.batch} | {calls * args.batch} images | "
          f"{s:.2f} | {calls * args.batch / s:.1f} images/s |")

    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, xi, yi):
        out = functional_call(model, (p, buffers), (xi[None],))
        return torch.nn.functional.cross_entropy(out, yi[None])

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
    xg = x[: args.grad_batch]
    yg = torch.arange(args.grad_batch, device=args.device) % 1000

    def norms():
        g = per_sample(params, xg, yg)
        return torch.sqrt(sum(v.flatten(1).pow(2).sum(1) for v in g.values()))

    calls, s = timed(norms, args.device, args.seconds)
    print(f"| PyTorch {torch.__version__}, `vmap(grad)` gradient norms | {args.grad_batch} | "
          f"{calls * args.grad_batch} images | {s:.2f} | {calls * args.grad_batch / s:.1f} norms/s |")


if __name__ == "__main__":
    main()
