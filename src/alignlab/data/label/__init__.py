"""Labelling and routing on records and numbers (METHODS.md family L): position-swap averaging of AI
preferences and agreement with existing labels, jury votes, reward-augmented relabelling, human/AI
routing, and the filters of the synthesis pipelines. The parts that call judges and samplers are in
:mod:`alignlab.recipes.curation`."""
