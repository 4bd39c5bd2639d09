"""Convolutional unrolled networks (CRsAE / DUNL): the estimator
``ConvolutionalDictionaryLearning``, its dispatcher (:mod:`.network`), the FFT
form of its operators (:mod:`.fft`) and the event records (:mod:`.events`)."""
