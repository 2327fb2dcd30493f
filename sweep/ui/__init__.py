"""The console: the command line, the plan as text, progress bars and messages, and TensorBoard rows.
The only layer of the study that writes to the terminal."""
