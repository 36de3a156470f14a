"""``clinicd``: the clinic archive — every room's events, the course of each patient."""
