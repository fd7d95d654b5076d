"""The model layer: pure-JAX cells, their one dispatch, the compiled CPU kernels, the
character LM and the transformer. It imports the data layer at most, never training
or studies.

- `cells`: RNN, LSTM, GRU, minGRU, minLSTM and LRU steps and the lax.scan recurrences,
  the reference math and the fast custom-VJP scan;
- `recurrence`: the one place that picks an implementation (`model.recurrence`);
- `kernels` (+ `csrc/recurrent_cpu.cc`): fused CPU recurrences through the XLA FFI;
- `charlm`: `CharLM` (input -> recurrent layers -> softmax head), `from_config`;
- `transformer`: `CharTransformer`, the causal transformer with carried context;
- `dropout`, `axes` (mesh axis names), `activations` (a model run over any text,
  keeping every state: the base of evaluation and of looking inside).
"""

from rnnlm.model.charlm import CharLM, count_params, from_config

__all__ = ['CharLM', 'count_params', 'from_config']
