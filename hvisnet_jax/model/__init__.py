"""The network: backbones (DLA-34, MobileNetV2), FPN, FCOS + BlendMask heads, identity branch."""
