"""STACX and BMG on the real Arcade Learning Environment, with host-side actors."""
