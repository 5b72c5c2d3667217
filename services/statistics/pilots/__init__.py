"""Pilot work (试点工作): the milestones of the 16 provincial pilot units and their grassroots
pilot units, their submissions, the problems they raise with the national regulator's policy
and legal affairs department, the roll-out of the pilot's model in 2009, and the national
regulator's formal acceptance by sampled spot checks."""
