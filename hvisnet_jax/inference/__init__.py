"""Per-frame inference in one jit: resizing, decoding, NMS, mask pasting, export."""
