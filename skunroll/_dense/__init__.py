"""Dense unrolled networks (atoms as rows of a matrix): the network's
dispatcher (:mod:`.network`), ``UnrolledDictionaryLearning`` (CRsAE / PUDLE)
and ``MixMateClustering`` (a mixture of sparse auto-encoders)."""
