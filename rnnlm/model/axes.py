"""Names of the device mesh's axes, shared by the model (layers that split their work
over devices themselves) and the training layer (which builds the mesh)."""

# The batch axis: each device holds a slice of the batch's streams.
DATA_AXIS = 'data'
