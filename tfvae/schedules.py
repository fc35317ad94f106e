"""Schedules of hyperparameters over optimizer steps.

They follow ``optimizer.iterations``, so a schedule resumes where it left off after loading a
saved model or restoring from ``keras.callbacks.BackupAndRestore``, and is the same on every
replica of a distributed run.
"""

import tensorflow as tf


def linear(step, start, end, steps):
    """``start`` at step 0, moving linearly to ``end`` at ``steps``, then ``end``:

        value(t) = start + (end − start) · min(t / steps, 1)

    >>> float(linear(50, 0.0, 10.0, 100))
    5.0
    """
    progress = tf.minimum(tf.cast(step, tf.float32) / float(steps), 1.0)
    return start + (end - start) * progress


def optimizer_step(model):
    """The model's optimizer step counter, or None before ``compile()``."""
    optimizer = getattr(model, "optimizer", None)
    return None if optimizer is None else optimizer.iterations


__all__ = ["linear", "optimizer_step"]
