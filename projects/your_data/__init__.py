# Makes this test module your_data.test_project, so that pytest can collect it next to
# projects/conll03/test_project.py in one run.
