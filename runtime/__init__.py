"""How the product runs on one machine: a real Triton on the CPU, and the services around it."""
