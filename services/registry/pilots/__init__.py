"""Pilot work (试点工作): the grassroots pilot unit each provincial pilot unit names."""
