"""Engine: checkpoint, evaluator, trainer, EMA and schedules."""
