"""Cluster mode on Ray: many cameras on many machines (``tdn cluster``, docs/cluster.md).

- :mod:`pipelines.cluster.cell`: a camera cell, the single-box
  :class:`~pipelines.service.RecognitionService` for a set of cameras, run as a Ray actor (frames
  stay in it; camera URLs go in, event JSON comes out).
- :mod:`pipelines.cluster.controller`: the named, detached controller actor: the desired camera
  list, assignment by measured capacity, health checks, moving the cameras of a dead cell, and the
  merged event log.
- :mod:`pipelines.cluster.frontend`: the HTTP front end on Ray Serve (``/cameras``, ``/events``,
  ``/predict``).
- :mod:`pipelines.cluster.deploy`: starting or joining Ray and deploying the three.

Ray is an optional extra (``pip install -e '.[cluster]'``); only this package imports it, and
nothing of the single-box path imports this package.
"""
