"""Weights from elsewhere: PyTorch DLA-34 import and twin, the SSDLite MobileNetV2 port, packaged model files."""
