"""Convolutional unrolled networks (CRsAE / DUNL): the estimator
``ConvolutionalDictionaryLearning`` (:mod:`.dict_learning`), its shapes
(:mod:`.shapes`), initial kernels (:mod:`.init`) and training model
(:mod:`.training`), its dispatcher (:mod:`.network`), the FFT form of its
operators (:mod:`.fft`), and the event records and detection (:mod:`.events`)."""
