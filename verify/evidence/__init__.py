"""One judgement of evidence: what a probe's observation proves about one matrix cell.

* :mod:`verify.evidence.cells`: the cell model (:class:`Expectation`, :class:`CellResult`)
  -- a host, presenting an identity, and a target (a secret or a blob) -- and the results;
* :mod:`verify.evidence.keyvault`, :mod:`verify.evidence.blob`: one module per data plane,
  stating its token audiences, the response that proves a denial, the responses that
  prove absence and how a value is fingerprinted (the wire codes come from the probe,
  their single source);
* :mod:`verify.evidence.planes`: the table cell kind -> plane;
* :mod:`verify.evidence.sources`: the table host kind -> the credential source its tokens
  must come from;
* :mod:`verify.evidence.judge`: the one judge, for every plane and every host kind.

A new data plane is one module and one entry in ``PLANES``; a new host kind is one entry
in ``EXPECTED_SOURCES``; neither copies the judge.
"""
