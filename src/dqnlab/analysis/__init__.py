"""Analysis: reads run directories, never training objects."""
