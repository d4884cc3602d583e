"""Rate RNNs, the four learning rules and the analyses that compare them."""
