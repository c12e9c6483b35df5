"""Learning strategies: how a network is trained rather than what it is, as config on any backbone and head.

``strategy=<name>`` (``conf/strategy``) puts a :class:`~src.strategies.base.Strategy` into ``model.strategy``;
the :class:`~src.training.restoration_module.RestorationModule` hands it the training objective, the optimiser's
parameter groups, evaluation and its checkpoint state. Strategies: Art's task balancing (:mod:`.art`), DCPT's
degradation-classification pre-training (:mod:`.dcpt`), RAM's masked pre-training and selective fine-tuning
(:mod:`.ram`).
"""
