"""The app's server side, Streamlit-free: training jobs, the train-and-save workflow, the browser export, plots."""
