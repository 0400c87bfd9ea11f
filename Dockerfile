FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN python -m livechat.catalogues
EXPOSE 8000
# The web process of docker-compose.yml and `make run`: the server and its options are livechat/server.py's.
CMD ["python", "-m", "livechat.server", "--host", "0.0.0.0", "--port", "8000"]
