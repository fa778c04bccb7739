"""Export trained networks to ONNX and write them into model_repository/ in Triton's layout."""
