"""Running the trainers: the ``tf.data`` input, ``tf.distribute`` strategies, budgets and schedules,
callbacks (NaN guard, monitoring) and the work directory that makes a run resumable.
"""
