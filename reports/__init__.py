"""Reports: fronts, tables and plots computed from a run folder alone.

Entry point: :func:`reports.generate.generate_reports` (``--mode reports``). It reads the run folder
(never trains, never measures, imports no torch) and writes into ``<run>/reports/``:

* figures, each as vector PDF and 300-dpi PNG: ``pareto_frontier``, ``pareto_pairs``, ``nas_evolution``,
  ``quantization_comparison``, ``constraint_feasibility``, ``latency_validation``, ``proxy_fidelity``
  (those the folder's contents allow; the rest are listed in ``ReportResult.missing``/``notes``);
* tables: ``model_comparison.csv`` and ``.tex`` (booktabs), ``nas_history.csv`` and ``.json``,
  ``all_results.json`` (everything, with provenance);
* ``index.html``: one offline page with every figure (embedded), table, column legend and the provenance.

Computing is apart from drawing: :mod:`reports.run_data` (the folder as typed data), :mod:`reports.fronts`,
:mod:`reports.evolution`, :mod:`reports.tables`, :mod:`reports.summary`, :mod:`reports.provenance` compute;
``reports.figures_*`` draw (with :mod:`reports.style` and :mod:`reports.label_layout`); :mod:`reports.latex`
and :mod:`reports.html` typeset.
"""
