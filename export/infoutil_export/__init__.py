"""infoutil_export: ONNX teachers for infoutil (forward graph + per-sample gradient-norm graph)."""
