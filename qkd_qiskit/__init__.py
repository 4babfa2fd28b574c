"""qkd-qiskit: classical-to-quantum knowledge distillation with Qiskit students."""

__version__ = "0.1.0"
