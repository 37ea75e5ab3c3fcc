"""SI and binary units. Internally tapeout uses seconds, bytes, FLOP and FLOP/s."""

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KiB = 1024
MiB = 1024**2
GiB = 1024**3
TERA = 1e12
US = 1e-6
MS = 1e-3
