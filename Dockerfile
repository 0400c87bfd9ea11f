FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
EXPOSE 8000
# The server and options of docker-compose.yml and `make run` (see the Makefile).
CMD ["uvicorn", "--host", "0.0.0.0", "--port", "8000", "--loop", "asyncio", "--http", "h11", "--ws", "websockets", \
     "--ws-per-message-deflate", "false", "--no-access-log", "livechat.asgi:application"]
