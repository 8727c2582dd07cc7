"""The Gram form against the product form of |G U^T|^2 in float32, against float64, as the
cancellation ratio R = sum_l |g_l||u_l| / |G U^T| grows (export/README.md, "The Gram form runs in
float64").

    python export/gram_cancellation.py
"""
# Gram form vs product form of |G U^T|^2 in float32 against float64, with a controlled
# cancellation: u_l nearly constant over positions (a uniform background) and sum_l g_l -> 0.
import numpy as np
rng = np.random.default_rng(0)
L, O, K = 49, 64, 288          # a 7x7 conv output, 64 channels, 32 in-channels x 3x3
for alpha in [0, 0.9, 0.99, 0.999, 0.9999]:
    errs_p, errs_g, Rs = [], [], []
    for t in range(20):
        u = np.abs(rng.normal(1, 0.02, (K, 1))) + rng.normal(0, 1e-3, (K, L))   # [K, L]
        g = rng.normal(0, 1, (O, L))
        g = g - alpha * g.mean(1, keepdims=True)                             # sum_l g_l shrinks
        ref = ((g @ u.T) ** 2).sum()
        R = (np.linalg.norm(g, axis=0) * np.linalg.norm(u, axis=0)).sum() / np.sqrt(ref)
        g32, u32 = g.astype(np.float32), u.astype(np.float32)
        prod = float(((g32 @ u32.T).astype(np.float32) ** 2).sum(dtype=np.float32))
        gram = float(((g32.T @ g32) * (u32.T @ u32)).sum(dtype=np.float32))
        errs_p.append(abs(prod - ref) / ref); errs_g.append(abs(gram - ref) / ref); Rs.append(R)
    print(f"alpha {alpha}: R = sum|g_l||u_l| / |dW| median {np.median(Rs):8.1f}; rel err of |dW|^2 "
          f"product form max {max(errs_p):.2e}, Gram form max {max(errs_g):.2e}")
