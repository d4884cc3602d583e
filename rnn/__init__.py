"""Rate RNNs, the learning rules of rnn/rules.py's registry and the analyses that compare
them."""
