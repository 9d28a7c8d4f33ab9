"""Activities: the side effects the workflows ask for, one module per workflow family."""
