"""Synthetic tasks with an exactly known data distribution pi_D (the paper's Appendix C).

``get_task(name, **options)`` builds a :class:`Task`; ``task.sample(n, seed)`` gives
:class:`Problem` s with the prompt, a response, the class, log pi_D, the support of pi_D and
the valid (correct) responses.
"""

from lmcoverage.tasks.base import Problem, Task, mixture_weights
from lmcoverage.tasks.graph import Graph, GraphClass, GraphTask
from lmcoverage.tasks.registry import get_task, task_names

__all__ = ["Graph", "GraphClass", "GraphTask", "Problem", "Task", "get_task", "mixture_weights",
           "task_names"]
