"""Time ONNX graphs side by side on ONNX Runtime's CPU provider: one session per graph, the runs
of all graphs interleaved (so a change of load hits every graph alike), medians. A forward graph
(NAME.onnx) given first is the yardstick for the gradient graphs (NAME.grad.onnx) after it; the
second and later gradient graphs are compared with the first, value for value.

    .venv/bin/python benches/stage2_side_by_side.py --batch 16 --reps 9 \
        WORK/resnet18-224.onnx PREVIOUS/resnet18-224.grad.onnx WORK/resnet18-224.grad.onnx

Used for the before/after rows of docs/benchmarks.md (issue 35, second round)."""
import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort


def session(path, batch, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    # no spinning: an idle thread would take the core the next graph's run needs
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    x = np.random.default_rng(0).random([batch] + [int(d) for d in inputs[0].shape[1:]],
                                        dtype=np.float32)
    feed = {inputs[0].name: x}
    if len(inputs) > 1:   # a gradient graph's labels
        feed[inputs[1].name] = np.random.default_rng(1).integers(0, 10, batch)
    sess.run(None, feed)   # warm-up, not timed
    return sess, feed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("graphs", nargs="+")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    runs = [(p, *session(p, args.batch, args.threads), []) for p in args.graphs]
    outputs = {}
    for _ in range(args.reps):
        for path, sess, feed, times in runs:
            start = time.perf_counter()
            outputs[path] = sess.run(None, feed)
            times.append(time.perf_counter() - start)
    forward = None
    for path, _, _, times in runs:
        med = statistics.median(times)
        grad = path.endswith(".grad.onnx")
        forward = forward if grad else med
        share = f"  of forward/3 {3 * forward / med:.3f}" if grad and forward else ""
        print(f"{med:.3f} s (min {min(times):.3f})  {args.batch / med:7.1f} images/s{share}  {path}")
    grads = [p for p in args.graphs if p.endswith(".grad.onnx")]
    for path in grads[1:]:
        ref, got = outputs[grads[0]], outputs[path]
        norms = np.max(np.abs(got[0] - ref[0]) / np.abs(ref[0]))
        sq = np.max(np.abs(got[1].astype(np.float64) - ref[1]) / np.maximum(np.abs(ref[1]), 1e-41))
        print(f"max rel diff to {grads[0]}: norms {norms:.2e}, sqnorms per parameter {sq:.2e}  {path}")


if __name__ == "__main__":
    main()
