"""Features -> trained heads: fused and standardised inputs, heads, the epoch loop, a saved variant."""
