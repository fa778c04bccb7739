"""Training code: data readers, networks and the commands that train and evaluate them."""
