"""Precision transforms: fp16/bf16 conversion, INT8 calibration and QDQ graphs."""
