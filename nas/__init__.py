"""The search: DEAP NSGA-II with constraints, evaluation journal, checkpoint and resume, parallel backends, fronts."""
