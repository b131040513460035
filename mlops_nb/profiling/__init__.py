"""Data profiles: what a data version looks like, kept where its bytes may not be.

A profile (:mod:`.profile`) holds, per column, its type (:mod:`.coltypes`)
and a distribution sketch (:mod:`.dists`): exact counts for categories and
small numeric sets, quantile sketches otherwise.  Tracked cells build one for
every data version they record; drift (:mod:`mlops_nb.drift`) compares them.
Pure: imports nothing above the ground floor.
"""
