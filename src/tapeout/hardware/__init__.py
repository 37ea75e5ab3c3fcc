"""Accelerator specs: the schema, the built-in catalog and the loader for user device files."""

from tapeout.hardware.catalog import hardware_names, list_hardware, load_hardware
from tapeout.hardware.spec import HardwareSpec

__all__ = ["HardwareSpec", "hardware_names", "list_hardware", "load_hardware"]
