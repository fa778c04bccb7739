"""Networks in plain PyTorch (torchvision is not usable here, and no pretrained weights exist)."""
