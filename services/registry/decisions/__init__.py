"""Decision events in (处罚决定回写): the enforcement body's certificate actions applied to the registry."""
