"""Everything that turns mouth crops into a logit: the network, checkpoints, backends."""
