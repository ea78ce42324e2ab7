"""``python -m tf_fanogan.cli``: the ``fanogan`` command."""

from tf_fanogan.cli import main_exit

main_exit()
